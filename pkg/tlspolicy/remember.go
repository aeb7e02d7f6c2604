package tlspolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Remembered levels. Once a domain has been reached with a verified
// certificate (or, with remember = "tls", with TLS at all), an attempt
// that would get less is deferred: an attacker who strips STARTTLS or
// swaps the certificate later gains nothing. The record is cleared by the
// admin (qrun -tls-forget DOMAIN), never by time, as in chasquid.

type level string

const (
	levelNone     level = ""
	levelTLS      level = "tls"
	levelVerified level = "verified"
)

func (l level) rank() int {
	switch l {
	case levelTLS:
		return 1
	case levelVerified:
		return 2
	}
	return 0
}

func (l level) mode() Mode {
	switch l {
	case levelTLS:
		return RequiredUnverified
	case levelVerified:
		return RequiredVerified
	}
	return None
}

// Remembered is one domain's record.
type Remembered struct {
	Level level     `json:"level"`
	Since time.Time `json:"since"`
}

const rememberFile = "remembered.json"

func readLevels(dir string) (map[string]Remembered, error) {
	m := map[string]Remembered{}
	b, err := os.ReadFile(filepath.Join(dir, rememberFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tlspolicy: %s: %w", rememberFile, err)
	}
	return m, nil
}

func (e *Engine) remembered(domain string) (Remembered, bool) {
	if e.o.Remember == "off" {
		return Remembered{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := readLevels(e.o.Dir)
	if err != nil {
		e.o.Log("tlspolicy_error", "err", err)
		return Remembered{}, false
	}
	r, ok := m[domain]
	return r, ok && r.Level.rank() > 0
}

// remember records that domain was reached at l, if that is more than
// what was known and the configuration remembers such a level.
func (e *Engine) remember(domain string, l level, now time.Time) {
	switch e.o.Remember {
	case "off":
		return
	case "verified":
		if l != levelVerified {
			return
		}
	}
	if l.rank() == 0 || domain == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Read, change one entry, replace: a -tls-forget of another domain
	// made meanwhile is kept.
	m, err := readLevels(e.o.Dir)
	if err != nil {
		e.o.Log("tlspolicy_error", "err", err)
		return
	}
	if m[domain].Level.rank() >= l.rank() {
		return
	}
	m[domain] = Remembered{Level: l, Since: now.UTC()}
	if err := writeJSON(filepath.Join(e.o.Dir, rememberFile), m); err != nil {
		e.o.Log("tlspolicy_error", "err", err)
		return
	}
	e.o.Log("tls_remembered", "domain", domain, "level", string(l))
}

// Forget clears what is remembered of domain; false when nothing was.
func Forget(dir, domain string) (bool, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	m, err := readLevels(dir)
	if err != nil {
		return false, err
	}
	if _, ok := m[domain]; !ok {
		return false, nil
	}
	delete(m, domain)
	return true, writeJSON(filepath.Join(dir, rememberFile), m)
}

// writeJSON replaces path with v's JSON: a temporary file, fsynced, then
// renamed over path, so a reader sees the old or the new content.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("tlspolicy: writing %s: %w", path, err)
	}
	return nil
}
