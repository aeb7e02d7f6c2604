// Package inspect is qrun's read-only view of the queue for an admin: one
// message whole (-show, like Postfix's postcat -q), the queue by
// recipient domain and age (-shape, like qshape), "ALL" for the tools that
// take IDs, and errors that tell a missing ID from an unreadable spool.
// Nothing here takes the spool lock or changes a file, so it all works
// while a qrun delivers.
package inspect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
)

// ErrNoSuchID is returned for a queue ID that is not in the queue.
var ErrNoSuchID = errors.New("no such message in the queue")

// ExitCode is the sysexits code for err from the queue tools: 65 for an ID
// that is not there (or not an ID), 74 for a spool that cannot be read.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return sysexits.OK
	case errors.Is(err, ErrNoSuchID), errors.Is(err, spool.ErrNotQueued), errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errSpool):
		return sysexits.DataErr
	}
	return sysexits.IOErr
}

var errSpool = errors.New("spool unreadable")

// SpoolError explains why the spool at dir could not be opened or read,
// with what to run: the bare errno tells an admin nothing.
func SpoolError(dir string, err error) error {
	who := "this user"
	if u, uerr := user.Current(); uerr == nil {
		who = u.Username
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v: the spool %s is missing or incomplete: create it with qrun -init (as root), or fix [spool] dir; qrun -check tells more", errSpool, err, dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %v: %s cannot read the spool %s: run qrun as root or as the run user; qrun -check shows owners and modes and how to fix them", errSpool, err, who, dir)
	}
	return fmt.Errorf("%w: %v: run qrun -check", errSpool, err)
}

// notQueued maps a missing file to ErrNoSuchID.
func notQueued(id string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, spool.ErrNotQueued) {
		return fmt.Errorf("%s: %w", id, ErrNoSuchID)
	}
	return err
}

// Expand turns the arguments of -hold, -release and -delete into IDs:
// "ALL" is every message in the queue (held ones only, for -release; none
// of the held ones, for -hold).
func Expand(sp *spool.Spool, args []string, want func(e spool.Entry) bool) ([]string, error) {
	if len(args) != 1 || args[0] != "ALL" {
		return args, nil // "ALL" among IDs is no ID: Each says so
	}
	ents, err := sp.Scan(nil)
	if err != nil {
		return nil, SpoolError(sp.Dir, err)
	}
	var ids []string
	for _, e := range ents {
		if want == nil || want(e) {
			ids = append(ids, e.ID)
		}
	}
	return ids, nil
}

// Show writes one message for a person: its envelope, each recipient's
// state and last reply, and its header; the body too with body.
func Show(w io.Writer, sp *spool.Spool, id string, body bool, now time.Time) error {
	if !spool.ValidID(id) {
		return fmt.Errorf("%q is not a queue ID: %w", id, ErrNoSuchID)
	}
	env, err := sp.ReadEnvelope(id)
	if err != nil {
		return notQueued(id, err)
	}
	st, err := sp.ReadState(env)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	from := env.From
	fmt.Fprintf(bw, "*** ENVELOPE ***\n")
	fmt.Fprintf(bw, "id:        %s\n", env.ID)
	fmt.Fprintf(bw, "arrived:   %s (%s ago)\n", env.Received.UTC().Format(time.RFC3339), now.Sub(env.Received).Round(time.Second))
	fmt.Fprintf(bw, "from:      <%s>\n", from)
	fmt.Fprintf(bw, "size:      %d bytes\n", env.Size)
	fmt.Fprintf(bw, "client:    %s (helo %s), %s\n", env.Peer, env.Helo, env.Protocol)
	fmt.Fprintf(bw, "body:      %s", env.Body)
	if env.UTF8 {
		fmt.Fprintf(bw, ", SMTPUTF8")
	}
	if env.RequireTLS {
		fmt.Fprintf(bw, ", REQUIRETLS")
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "status:    %s\n", status(sp, id, now))
	fmt.Fprintf(bw, "*** RECIPIENTS ***\n")
	for _, rc := range st.Rcpts {
		line := fmt.Sprintf("<%s>  %s", rc.Addr, rc.Status)
		if rc.Attempts > 0 {
			line += fmt.Sprintf(", %d attempts, last %s", rc.Attempts, rc.Time.UTC().Format(time.RFC3339))
		}
		if rc.Reply != "" {
			line += "\n    last reply: " + rc.Reply
		}
		if rc.Bounced != "" {
			line += "\n    reported in " + rc.Bounced
		}
		fmt.Fprintln(bw, line)
	}
	data, err := sp.OpenData(env)
	if err != nil {
		bw.Flush()
		return notQueued(id, err)
	}
	defer data.Close()
	fmt.Fprintf(bw, "*** HEADER ***\n")
	r := bufio.NewReader(data)
	var n int64
	for {
		line, err := r.ReadString('\n')
		n += int64(len(line))
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
		bw.WriteString(strings.TrimRight(line, "\r\n") + "\n")
		if err != nil {
			break
		}
	}
	if !body {
		fmt.Fprintf(bw, "*** BODY: %d bytes (qrun -show %s -body prints it) ***\n", env.Size-n, id)
		return bw.Flush()
	}
	fmt.Fprintf(bw, "*** BODY ***\n")
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			bw.WriteString(strings.TrimRight(line, "\r\n") + "\n")
		}
		if err != nil {
			break
		}
	}
	fmt.Fprintf(bw, "*** END ***\n")
	return bw.Flush()
}

// status says whether the message is held, being delivered, or when its
// next try is (the queue file's mtime, smtp-bs-queue(5)).
func status(sp *spool.Spool, id string, now time.Time) string {
	if _, err := os.Stat(filepath.Join(sp.Dir, "hold", id)); err == nil {
		return "held (qrun -release " + id + ")"
	}
	fi, err := os.Stat(filepath.Join(sp.Dir, "queue", id))
	switch {
	case err != nil:
		return "gone (delivered or removed meanwhile)"
	case sp.Delivering(id):
		return "being delivered now"
	case fi.ModTime().After(now):
		return "queued, next try in " + fi.ModTime().Sub(now).Round(time.Second).String()
	}
	return "queued, due now"
}

// Each runs f on every ID, printing "ID: what" on out or the error on
// errw, and returns the exit code: 0, 65 if an ID was not in the queue,
// 74 if the spool could not be read or written (the worse one wins).
func Each(out, errw io.Writer, ids []string, f func(id string) (string, error)) int {
	code := sysexits.OK
	for _, id := range ids {
		var what string
		err := fmt.Errorf("%q is not a queue ID: %w", id, ErrNoSuchID)
		if spool.ValidID(id) {
			what, err = f(id)
		}
		if err != nil {
			fmt.Fprintf(errw, "qrun: %s: %v\n", id, notQueued(id, err))
			code = max(code, ExitCode(err))
			continue
		}
		fmt.Fprintf(out, "%s: %s\n", id, what)
	}
	return code
}

// Plural is "1 message", "2 messages".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// RouteExit is qrun -route's exit code for the account delivery and
// mailbox wrote (pkg/delivery's Explain, pkg/mailbox's Explain): 69 when
// the recipient would bounce or be refused, 75 when it would be deferred,
// 0 when it would be delivered, as sendmail -bv's "deliverable".
func RouteExit(account string) int {
	switch {
	case strings.Contains(account, "would bounce"), strings.Contains(account, "refused at RCPT time"):
		return sysexits.Unavail
	case strings.Contains(account, "would be deferred"):
		return sysexits.TempFail
	}
	return sysexits.OK
}
