package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// AnswerHealth answers a balancer's health check (a LOCAL connection): a
// 220 greeting, then 221 to a QUIT if one comes within wait, then a close.
// It logs nothing: a balancer checks every few seconds, and a log line per
// check would bury the mail. Answering QUIT before closing keeps the close
// clean (no reset for a QUIT we left unread).
func AnswerHealth(conn net.Conn, hostname string, wait time.Duration) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := fmt.Fprintf(conn, "220 %s ESMTP\r\n", hostname); err != nil {
		return
	}
	r := bufio.NewReaderSize(io.LimitReader(conn, 4096), 1024)
	for range 4 {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if strings.EqualFold(strings.TrimSpace(string(line)), "QUIT") {
			fmt.Fprintf(conn, "221 2.0.0 %s Bye\r\n", hostname)
			return
		}
		fmt.Fprintf(conn, "503 5.5.1 Health check: only QUIT\r\n")
	}
}
