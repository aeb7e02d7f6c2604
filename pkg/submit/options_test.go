package submit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		prog string
		args string
		want Options
	}{
		{"sendmail", "root", Options{Rcpts: []string{"root"}}},
		// Debian's cron and cronie.
		{"sendmail", "-FCronDaemon -i -B8BITMIME -oem root", Options{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, Rcpts: []string{"root"}}},
		{"sendmail", "-FCronDaemon -i -odi -oem -oi -t", Options{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, ExtractRcpts: true, Rcpts: []string{}}},
		// bsd-mailx, s-nail, git send-email, PHP's mail().
		{"sendmail", "-i -- a@x b@y", Options{IgnoreDots: true, Rcpts: []string{"a@x", "b@y"}}},
		{"sendmail", "-oi -f bob@x -- a@x", Options{IgnoreDots: true, Sender: "bob@x", SenderSet: true, Rcpts: []string{"a@x"}}},
		{"sendmail", "-t -i", Options{ExtractRcpts: true, IgnoreDots: true, Rcpts: []string{}}},
		{"sendmail", "-ti", Options{ExtractRcpts: true, IgnoreDots: true, Rcpts: []string{}}},
		{"sendmail", "-fbob@x -rcarol@y a", Options{Sender: "carol@y", SenderSet: true, Rcpts: []string{"a"}}},
		{"sendmail", "-f <> a", Options{SenderSet: true, Rcpts: []string{"a"}}},
		{"sendmail", "-f <bob@x> a", Options{Sender: "bob@x", SenderSet: true, Rcpts: []string{"a"}}},
		{"sendmail", "-C /tmp/x.toml -bm a", Options{ConfigPath: "/tmp/x.toml", ConfigSet: true, Rcpts: []string{"a"}}},
		{"sendmail", "-oitrue -oiFalse a", Options{Rcpts: []string{"a"}}},
		{"sendmail", "-O IgnoreDots=true a", Options{IgnoreDots: true, Rcpts: []string{"a"}}},
		{"sendmail", "-v -odb -oee -oQ/var/spool -U -m -n -G -N never -R hdrs -V id -X /tmp/log -L tag -h 9 -Ac a", Options{Verbose: true, Rcpts: []string{"a"}}},
		// Options stop at the first recipient: a later "-f" is an address.
		{"sendmail", "a -f b", Options{Rcpts: []string{"a", "-f", "b"}}},
		{"sendmail", "-bi", Options{NewAliases: true, Rcpts: []string{}}},
		{"sendmail", "-I", Options{NewAliases: true, Rcpts: []string{}}},
		{"/usr/bin/newaliases", "", Options{NewAliases: true, Rcpts: []string{}}},
	}
	for _, c := range cases {
		o, err := Parse(c.prog, strings.Fields(c.args))
		if err != nil {
			t.Errorf("%s %s: %v", c.prog, c.args, err)
			continue
		}
		if !reflect.DeepEqual(*o, c.want) {
			t.Errorf("%s %s:\n got %+v\nwant %+v", c.prog, c.args, *o, c.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	cases := []struct {
		prog, args, says string
	}{
		{"sendmail", "-bs", "smtp-bs"},
		{"sendmail", "-bp", "qrun -list"},
		{"mailq", "", "qrun -list"},
		{"sendmail", "-q", "qrun -flush"},
		{"sendmail", "-q30m", "qrun -flush"},
		{"sendmail", "-qf", "qrun -flush"},
		{"sendmail", "-bd", "launcher"},
		{"sendmail", "-bv root", "-bv is not supported"},
		{"sendmail", "-bt", "-bt is not supported"},
		{"sendmail", "-x root", "unknown option -x"},
		{"sendmail", "-f", "-f needs a value"},
		{"sendmail", "-oimaybe root", "-oi"},
	}
	for _, c := range cases {
		_, err := Parse(c.prog, strings.Fields(c.args))
		var se *Error
		if !errors.As(err, &se) || se.Code != ExUsage || !strings.Contains(se.Msg, c.says) {
			t.Errorf("%s %s: got %v, want exit 64 saying %q", c.prog, c.args, err, c.says)
		}
	}
}
