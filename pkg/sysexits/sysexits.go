// Package sysexits names the exit codes of sysexits.h that both programs use.
package sysexits

// The codes cron, xinetd and monitoring scripts can tell apart.
const (
	OK        = 0
	Usage     = 64 // EX_USAGE: bad flags
	DataErr   = 65 // EX_DATAERR: bad input data (a queue ID that is not there)
	Unavail   = 69 // EX_UNAVAILABLE: some recipients failed for good
	IOErr     = 74 // EX_IOERR: the spool could not be read or written
	Software  = 70 // EX_SOFTWARE: internal error
	CantCreat = 73 // EX_CANTCREAT: a file or directory could not be created
	TempFail  = 75 // EX_TEMPFAIL: try again later; nothing was lost
	NoPerm    = 77 // EX_NOPERM: privileges could not be dropped, or -check failed
	Config    = 78 // EX_CONFIG: the configuration is wrong
)
