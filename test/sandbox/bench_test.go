package sandbox_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// BenchmarkSessionCPU runs the real smtp-bs for one local session (a
// pipe: EHLO, one message, QUIT) with the sandbox off and on, alternately
// (the machine's load drifts), and reports the median CPU (user + system,
// from wait4) of each and their ratio: the difference is what the sandbox
// costs a connection.
//
//	go test -run '^$' -bench SessionCPU -benchtime 200x ./test/sandbox
func BenchmarkSessionCPU(b *testing.B) {
	bin := testenv.Bin(b, "smtp-bs")
	cfgs := map[bool]*testenv.Env{}
	for _, on := range []bool{false, true} {
		e := testenv.New(b)
		e.Extra["sandbox"] = fmt.Sprintf("enabled = %v", on)
		e.WriteConfig()
		cfgs[on] = e
	}
	in := []byte("EHLO local\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
	session := func(e *testenv.Env) time.Duration {
		cmd := exec.Command(bin, "-config", e.CfgFile)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "queued") {
			b.Fatalf("session: %v\n%s\n%s", err, out, e.Log())
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var off, on []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off = append(off, session(cfgs[false]))
		on = append(on, session(cfgs[true]))
	}
	median := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Microseconds())
	}
	mOff, mOn := median(off), median(on)
	b.ReportMetric(mOff, "off-cpu-µs")
	b.ReportMetric(mOn, "on-cpu-µs")
	b.ReportMetric(mOn-mOff, "sandbox-cpu-µs")
	b.ReportMetric(mOn/mOff, "on/off")
}
