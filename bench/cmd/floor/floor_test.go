package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The floor must really accept a message: 250 only after the file holds
// it, dot-stuffing undone.
func TestFloorAcceptsAMessage(t *testing.T) {
	dir := t.TempDir()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() {
		code := serve(dir, inR, outW)
		outW.Close()
		done <- code
	}()
	go func() {
		io.WriteString(inW, "EHLO client\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"+
			"Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n")
		inW.Close()
	}()
	var replies []string
	sc := bufio.NewScanner(outR)
	for sc.Scan() {
		if l := sc.Text(); len(l) > 3 && l[3] == ' ' {
			replies = append(replies, l[:3])
		}
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got := strings.Join(replies, " "); got != "220 250 250 250 354 250 221" {
		t.Fatalf("replies %q", got)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if want := "Subject: x\r\n\r\n.leading dot\r\nbody\r\n"; string(b) != want {
		t.Fatalf("content %q, want %q", b, want)
	}
}
