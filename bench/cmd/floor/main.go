// Command floor is the benchmark's lower bound: the least an SMTP handler
// started once per connection can do. It speaks just enough SMTP on fds
// 0/1 (as tcpserver hands them) to accept messages, writes each one to a
// new file in the directory named by its argument, fsyncs that file, and
// only then answers 250. No policy, no envelope, no logging: what is left
// is the cost of a process start plus one durable write.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor SPOOLDIR")
		os.Exit(64)
	}
	os.Exit(serve(os.Args[1], os.Stdin, os.Stdout))
}

func serve(dir string, in *os.File, out *os.File) int {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriter(out)
	say := func(s string) bool {
		w.WriteString(s)
		w.WriteString("\r\n")
		return w.Flush() == nil
	}
	say("220 floor ESMTP")
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0
		}
		verb := strings.ToUpper(strings.TrimSpace(line))
		if len(verb) > 4 {
			verb = verb[:4]
		}
		switch verb {
		case "EHLO":
			say("250-floor\r\n250-PIPELINING\r\n250 8BITMIME")
		case "HELO", "MAIL", "RCPT", "RSET", "NOOP":
			say("250 OK")
		case "DATA":
			say("354 go ahead")
			n++
			if err := receive(r, filepath.Join(dir, fmt.Sprintf("%d.%d", os.Getpid(), n))); err != nil {
				say("451 4.3.0 " + err.Error())
				return 75
			}
			say("250 2.0.0 OK")
		case "QUIT":
			say("221 bye")
			return 0
		default:
			say("502 5.5.2 unknown command")
		}
	}
}

// receive copies the message up to the lone "." into path and fsyncs it.
func receive(r *bufio.Reader, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	start := true // at the start of a line
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			f.Close()
			os.Remove(path)
			return err
		}
		if start && (bytes.Equal(line, []byte(".\r\n")) || bytes.Equal(line, []byte(".\n"))) {
			break
		}
		if start && line[0] == '.' {
			line = line[1:]
		}
		w.Write(line)
		start = err == nil
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := syscall.Fsync(int(f.Fd())); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
