package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Status is a recipient's delivery state.
type Status string

// Recipient states. Sent and Failed are final.
const (
	Pending  Status = "pending"
	Sent     Status = "sent"
	Deferred Status = "deferred"
	Failed   Status = "failed"
)

const stateMagic = "smtp-bs-state 1"

// maxStateLine bounds one line of a state log: a record is at most about
// 1,050 bytes (oneLine cuts the reply at 1,000).
const maxStateLine = 4096

// Record is one line of a state log.
type Record struct {
	Time   time.Time
	Kind   string // "sent", "deferred", "failed", "bounced", "warned"
	Rcpt   int    // index into Envelope.Rcpts
	Detail string // the remote reply, or the bounce's queue ID
}

// RcptState is what the log says of one recipient.
type RcptState struct {
	Addr     string
	Status   Status
	Attempts int
	Reply    string
	Time     time.Time
	Bounced  string // the queue ID of the DSN that reported its failure
}

// State is a message's delivery history, folded per recipient.
type State struct {
	Rcpts   []RcptState
	Bounces int  // DSNs made so far
	Warned  bool // a delay warning was sent
	Damaged int  // lines that did not parse (ignored: at worst a recipient is tried again)
}

// Done reports whether no recipient is left to try.
func (st *State) Done() bool {
	for _, r := range st.Rcpts {
		if r.Status != Sent && r.Status != Failed {
			return false
		}
	}
	return true
}

// ReadState folds state/ID over env's recipients. A missing log means no
// attempt yet.
func (s *Spool) ReadState(env *Envelope) (*State, error) {
	st := &State{Rcpts: make([]RcptState, len(env.Rcpts))}
	for i, r := range env.Rcpts {
		st.Rcpts[i] = RcptState{Addr: r, Status: Pending}
	}
	f, err := os.Open(s.path(dirState, env.ID))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open state %s: %w", env.ID, err)
	}
	defer f.Close()
	// The whole log is read, however long it has grown: a record left
	// unread would be an attempt forgotten, a recipient delivered again
	// and a final outcome never reported (an earlier version stopped at
	// 4 MiB, which 100 recipients deferred with long replies reach in
	// about a day and a half). Memory is bounded by the line instead.
	br := bufio.NewReaderSize(f, maxStateLine)
	bounceIDs := map[string]bool{}
	for n := 0; ; n++ {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// No record is this long: skip the rest of the line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("spool: read state %s: %w", env.ID, err)
			}
			if n == 0 {
				return nil, fmt.Errorf("spool: %s: %w: state file header too long", env.ID, ErrCorrupt)
			}
			st.Damaged++
			if err != nil {
				break
			}
			continue
		}
		if err != nil {
			if err != io.EOF {
				return nil, fmt.Errorf("spool: read state %s: %w", env.ID, err)
			}
			// A last line without its newline was cut short by a crash
			// before its fsync: the attempt it describes counts as not made.
			if len(raw) > 0 {
				st.Damaged++
			}
			break
		}
		line := string(raw[:len(raw)-1])
		if n == 0 {
			if line != stateMagic {
				if strings.HasPrefix(line, "smtp-bs-state ") {
					return nil, fmt.Errorf("%w: state version %q", ErrFutureVersion, line)
				}
				return nil, fmt.Errorf("spool: %s: %w: state file header %q", env.ID, ErrCorrupt, line)
			}
			continue
		}
		rec, ok := parseRecord(line)
		if !ok || rec.Rcpt < 0 || rec.Rcpt >= len(st.Rcpts) {
			st.Damaged++
			continue
		}
		r := &st.Rcpts[rec.Rcpt]
		switch rec.Kind {
		case "sent":
			r.Status, r.Reply, r.Time = Sent, rec.Detail, rec.Time
			r.Attempts++
		case "failed":
			r.Status, r.Reply, r.Time = Failed, rec.Detail, rec.Time
			r.Attempts++
		case "deferred":
			if r.Status != Sent && r.Status != Failed {
				r.Status = Deferred
			}
			r.Reply, r.Time = rec.Detail, rec.Time
			r.Attempts++
		case "bounced":
			r.Bounced = rec.Detail
			bounceIDs[rec.Detail] = true
		case "warned":
			st.Warned = true
		default:
			st.Damaged++
		}
	}
	st.Bounces = len(bounceIDs)
	return st, nil
}

func parseRecord(line string) (Record, bool) {
	f := strings.SplitN(line, " ", 4)
	if len(f) < 3 {
		return Record{}, false
	}
	sec, err1 := strconv.ParseInt(f[0], 10, 64)
	idx, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return Record{}, false
	}
	r := Record{Time: time.Unix(sec, 0), Kind: f[1], Rcpt: idx}
	if len(f) == 4 {
		r.Detail = f[3]
	}
	return r, true
}

// Append adds records to state/ID and fsyncs before returning: once it
// returns, the outcomes survive a crash.
func (s *Spool) Append(id string, recs ...Record) error {
	if err := cleanName(id); err != nil {
		return err
	}
	p := s.path(dirState, id)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: state %s: %w", id, err)
	}
	defer f.Close()
	end, err := wholeLines(f)
	if err != nil {
		return fmt.Errorf("spool: state %s: %w", id, err)
	}
	var b strings.Builder
	if end == 0 {
		b.WriteString(stateMagic + "\n")
	}
	for _, r := range recs {
		fmt.Fprintf(&b, "%d %s %d %s\n", r.Time.Unix(), r.Kind, r.Rcpt, oneLine(r.Detail))
	}
	if _, err := s.ops.Write(f, []byte(b.String())); err != nil {
		return fmt.Errorf("spool: state %s: %w", id, err)
	}
	if err := s.ops.Fsync(f); err != nil {
		return fmt.Errorf("spool: state %s: fsync: %w", id, err)
	}
	if end == 0 {
		return s.fsyncDir(dirState)
	}
	return nil
}

// wholeLines drops a last line that has no newline, and leaves f's offset
// at the end. Such a line is a record whose write was cut short (a crash,
// a full disk) and never confirmed; ReadState ignores it, so the attempt
// it describes is made again. Appending after it would glue the next
// record onto it and spoil that one too.
func wholeLines(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	buf := make([]byte, 4096)
	for end > 0 {
		off := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-off], off)
		if err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = off + int64(i) + 1
			break
		}
		end = off
	}
	if end != fi.Size() {
		if err := f.Truncate(end); err != nil {
			return 0, err
		}
	}
	_, err = f.Seek(end, io.SeekStart)
	return end, err
}

// oneLine keeps a remote reply on one line of bounded length.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}
