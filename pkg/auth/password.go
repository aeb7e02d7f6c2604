package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadPassword reads a new password: from the terminal without echo, asked
// twice, when in is one; otherwise the first line of in, for scripts.
// Prompts go to prompt.
func ReadPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(io.LimitReader(in, maxField+2)).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", err
		}
		if len(line) > maxField+1 {
			return "", fmt.Errorf("password longer than %d bytes", maxField)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if pw == "" {
			return "", errors.New("empty password on standard input")
		}
		return pw, nil
	}
	ask := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		return string(b), err
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	if len(pw) > maxField {
		return "", fmt.Errorf("password longer than %d bytes", maxField)
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords differ")
	}
	return pw, nil
}
