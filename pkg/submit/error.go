package submit

import "smtp-bs/pkg/sysexits"

// Exit codes, as sendmail uses them (sysexits.h). Callers such as cron and
// mail tell "try again later" (75) from "this will never work" (the rest).
const (
	ExOK          = sysexits.OK
	ExUsage       = sysexits.Usage    // 64: bad flags, no recipients, a refused mode (-bs, -bp, -q)
	ExDataErr     = sysexits.DataErr  // 65: the message or its sender was refused (5xx to MAIL or DATA), or it could not be parsed
	ExNoUser      = 67                // EX_NOUSER: a recipient was refused as unknown (5.1.x)
	ExUnavailable = sysexits.Unavail  // 69: a recipient was refused for another reason (5xx: relaying denied ...)
	ExSoftware    = sysexits.Software // 70: an internal error
	ExIOErr       = sysexits.IOErr    // 74: the input could not be read
	ExTempFail    = sysexits.TempFail // 75: nothing was sent; try again later
	ExConfig      = sysexits.Config   // 78: the config file is readable but wrong
)

// Error is a failure with the exit code it maps to. Msg is written to
// stderr after "sendmail: ".
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
