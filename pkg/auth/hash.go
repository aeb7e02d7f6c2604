package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The argon2id parameters of new hashes: OWASP's m=7 MiB, t=5, p=1, not
// RFC 9106's 64 MiB. Every AUTH attempt pays one check, a wrong password
// or an unknown user alike, on a port anyone can reach: at 64 MiB and 4
// lanes one check took 140 MB of RSS and 255 ms, and the shipped
// submission socket allows 32 sessions at once. README's security section
// gives the measured figures (BenchmarkVerify and hostile's
// TestAuthMemory measure them).
const (
	argonTime    = 5
	argonMemory  = 7 << 10 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
	bcryptCost   = 10
)

// Bounds on the parameters a credentials file may ask for, so that a
// mistyped line cannot make every AUTH allocate gigabytes or spin for
// minutes.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
	maxBcryptCost  = 16
)

// Scheme names a password hashing scheme.
const (
	Argon2id = "argon2id"
	Bcrypt   = "bcrypt"
)

// Hash hashes password with scheme (Argon2id or Bcrypt), in the form a
// credentials file holds.
func Hash(scheme, password string) (string, error) {
	switch scheme {
	case Argon2id, "":
		salt := make([]byte, argonSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
			b64.EncodeToString(salt), b64.EncodeToString(key)), nil
	case Bcrypt:
		if len(password) > 72 {
			return "", errors.New("bcrypt uses only the first 72 bytes of a password: use argon2id")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
		return string(h), err
	}
	return "", fmt.Errorf("unknown hash scheme %q (want %s or %s)", scheme, Argon2id, Bcrypt)
}

var b64 = base64.RawStdEncoding

// hash is one parsed password hash.
type hash struct {
	bcrypt []byte // the whole bcrypt string, or nil
	cost   int    // bcrypt's

	// argon2id
	salt, key []byte
	mem, time uint32
	threads   uint8
}

// parseHash checks a hash string and returns it parsed; the error says
// what is wrong without repeating the hash.
func parseHash(s string) (*hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil || len(s) != 60 {
			return nil, errors.New("malformed bcrypt hash")
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("bcrypt cost %d is above %d", cost, maxBcryptCost)
		}
		return &hash{bcrypt: []byte(s), cost: cost}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("only argon2id is supported, not argon2i or argon2d")
	}
	return nil, errors.New("not a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash")
}

// parseArgon2id reads the PHC string form:
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>, base64 without padding.
func parseArgon2id(s string) (*hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return nil, errors.New("malformed argon2id hash (want $argon2id$v=19$m=...,t=...,p=...$salt$hash)")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2id version %q is not v=%d", f[2], argon2.Version)
	}
	h := &hash{}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, errors.New("argon2id parameters must be m=...,t=...,p=...")
	}
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(params[i], "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || k != name || err != nil || n == 0 {
			return nil, fmt.Errorf("argon2id parameter %d must be %s=<positive number>", i+1, name)
		}
		switch name {
		case "m":
			h.mem = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, errors.New("argon2id p must be at most 255")
			}
			h.threads = uint8(n)
		}
	}
	if h.mem > maxArgonMemory || h.time > maxArgonTime {
		return nil, fmt.Errorf("argon2id parameters above the limits (m=%d KiB, t=%d)", maxArgonMemory, maxArgonTime)
	}
	if h.mem < 8*uint32(h.threads) {
		return nil, errors.New("argon2id m must be at least 8*p")
	}
	var err error
	if h.salt, err = b64.DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("argon2id salt is not base64 of at least 8 bytes")
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil || len(h.key) < 16 || len(h.key) > 128 {
		return nil, errors.New("argon2id hash is not base64 of 16 to 128 bytes")
	}
	return h, nil
}

// Limits caps what one check may cost: a credentials line above them is
// refused when the file is read, so a pasted hash from elsewhere cannot
// make every AUTH attempt on an open port cost hundreds of megabytes.
type Limits struct {
	MemoryKiB  uint32 // argon2id m
	Passes     uint32 // argon2id t
	BcryptCost int
}

// DefaultLimits fit the hashes -hash-password makes, with some room.
var DefaultLimits = Limits{MemoryKiB: 16 << 10, Passes: 8, BcryptCost: 12}

// within says why h costs more than l allows, or "".
func (h *hash) within(l Limits) string {
	switch {
	case h.bcrypt != nil && h.cost > l.BcryptCost:
		return fmt.Sprintf("bcrypt cost %d is above [auth] max_bcrypt_cost %d", h.cost, l.BcryptCost)
	case h.bcrypt == nil && h.mem > l.MemoryKiB:
		return fmt.Sprintf("argon2id m=%d KiB is above [auth] max_hash_memory_kib %d (make a new hash with smtp-bs -hash-password)", h.mem, l.MemoryKiB)
	case h.bcrypt == nil && h.time > l.Passes:
		return fmt.Sprintf("argon2id t=%d is above [auth] max_hash_passes %d", h.time, l.Passes)
	}
	return ""
}

// weight orders hashes by what a check costs, to pick the dummy's.
func (h *hash) weight() uint64 {
	if h.bcrypt != nil {
		return 1 << uint(h.cost) // about 2^cost Blowfish setups
	}
	return uint64(h.mem) * uint64(h.time)
}

// burn does the work of a check of h for a password that cannot match:
// the dummy for unknown users, with h's parameters, so that a miss costs
// what a wrong password costs.
func (h *hash) burn(password string) {
	if h.bcrypt != nil {
		bcrypt.GenerateFromPassword([]byte(password), h.cost) // the same key setup as a compare
		return
	}
	argon2.IDKey([]byte(password), []byte("smtp-bs dummy salt"), h.time, h.mem, h.threads, uint32(len(h.key)))
	release()
}

// release collects argon2id's memory at once, so that the next check
// reuses it: left to the collector's pace, a second AUTH in the session
// found the first one's blocks still live and the process peaked at two
// checks' worth (33 MB instead of 20 with m=12 MiB).
func release() { runtime.GC() }

// verify reports whether password matches, in time that does not depend
// on where the two differ.
func (h *hash) verify(password string) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(password)) == nil
	}
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.mem, h.threads, uint32(len(h.key)))
	release()
	return subtle.ConstantTimeCompare(key, h.key) == 1
}
