// Command sendmail is the sendmail-compatible local submission command of
// smtp-bs, installable as /usr/sbin/sendmail. It needs no privilege: it
// hands the message to the local smtp-bs over SMTP at [local] submit_to
// (default 127.0.0.1:25), as sendmail 8.12's submission program does. The
// work is done in pkg/submit; see README.md, "Local submission".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"smtp-bs/pkg/submit"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	o, err := submit.Parse(os.Args[0], os.Args[1:])
	if err != nil {
		return report(err)
	}
	if o.Help {
		io.WriteString(os.Stdout, submit.Help)
		return submit.ExOK
	}
	if o.NewAliases {
		fmt.Fprintln(os.Stderr, "sendmail: nothing to do: qrun reads the aliases file at each delivery; there is no database to rebuild")
		return submit.ExOK
	}
	settings, err := submit.LoadSettings(o.ConfigPath, o.ConfigSet)
	if err != nil {
		return report(err)
	}
	env := submit.Env{Settings: settings, LocalName: settings.HeloName()}
	if o.Verbose {
		fmt.Fprintf(os.Stderr, "sendmail (smtp-bs %s): submitting to %s\n", version, settings.SubmitTo)
		env.Debug = os.Stderr
	}
	if err := confine(&env, o.Verbose); err != nil {
		return report(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := submit.Submit(ctx, o, env, os.Stdin)
	if o.Verbose && res != nil && res.Reply != "" {
		fmt.Fprintf(os.Stderr, "sendmail: sent (%s) to %s\n", res.Reply, strings.Join(res.Accepted, ", "))
	}
	return report(err)
}

// report writes err, if any, to stderr and returns its exit code.
func report(err error) int {
	if err == nil {
		return submit.ExOK
	}
	var se *submit.Error
	if !errors.As(err, &se) {
		se = &submit.Error{Code: submit.ExSoftware, Msg: err.Error()}
	}
	io.WriteString(os.Stderr, "sendmail: "+se.Msg+"\n")
	return se.Code
}
