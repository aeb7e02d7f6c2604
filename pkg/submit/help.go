package submit

// Help is what sendmail --help prints (on stdout, exit 0).
const Help = `sendmail (smtp-bs): the sendmail-compatible local submission command. It
reads one message on standard input and hands it, with no privilege, to the
local smtp-bs over SMTP at [local] submit_to (default 127.0.0.1:25), adding
From:, Date: and Message-ID: when missing and removing Bcc:.

usage: sendmail [-t] [-i] [-f sender] [-F "Full Name"] [-C config] [-v] [--] [recipient ...]
       sendmail -bi | newaliases     nothing to rebuild (qrun reads the aliases file)
       sendmail --help

  recipient   addresses or lists ("Ann <ann@x>, bob"); a bare name gets @hostname
  -t          also take recipients from To:, Cc: and Bcc:
  -i, -oi     a line holding only "." is data, not the end of the message
  -f, -r ADDR envelope sender ('<>' is the null sender); default: login@hostname
  -F NAME     display name of the From: header that is added
  -C FILE     the smtp-bs config to read (default /etc/smtp-bs/smtp-bs.toml)
  -v          print the SMTP dialogue on stderr
  -bs, -bp (mailq), -q, -bd are refused: use smtp-bs, qrun -list, qrun -flush.
  Other sendmail options (-oX, -O, -B, -N, -R, -V, -h N, ...) are accepted and ignored.

exit codes (sysexits):
  0   taken for every recipient
  64  bad flags, no recipients, or a refused mode
  65  the message or its sender was refused
  67  a recipient was refused as unknown
  69  a recipient was refused for another reason (e.g. relaying denied)
  74  standard input could not be read
  75  nothing was sent (nothing listens, 4xx, a broken connection): try again
  78  the config named with -C is missing or wrong
See smtp-bs-sendmail(8).
`
