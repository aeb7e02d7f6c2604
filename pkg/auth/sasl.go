package auth

import (
	"bytes"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Checker verifies a user name and password and returns the reply for a
// failure (nil on success).
type Checker func(user, password string) error

// maxField bounds a user name or password from the client.
const maxField = 1024

// ErrMalformed answers a SASL response that does not follow the
// mechanism. Servers never repeat what the client sent.
var ErrMalformed = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication response"}

// ErrIdentity answers PLAIN with an authorization identity other than the
// user: smtp-bs does not let one user act for another.
var ErrIdentity = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authorization identity not allowed"}

// errUnexpected answers a response after the exchange is over.
var errUnexpected = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Unexpected authentication response"}

// NewPlainServer is the server side of SASL PLAIN (RFC 4616): one
// response "authzid NUL user NUL password", after an empty challenge when
// the client gave no initial response.
func NewPlainServer(check Checker) sasl.Server { return &plainServer{check: check} }

type plainServer struct {
	check Checker
	asked bool
	done  bool
}

func (p *plainServer) Next(resp []byte) ([]byte, bool, error) {
	if p.done {
		return nil, false, errUnexpected
	}
	if resp == nil && !p.asked {
		p.asked = true
		return []byte{}, false, nil
	}
	p.done = true
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[1]) > maxField || len(parts[2]) > maxField {
		return nil, false, ErrMalformed
	}
	authzid, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authzid != "" && authzid != user {
		return nil, false, ErrIdentity
	}
	if err := p.check(user, pass); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

// NewLoginServer is the server side of the obsolete but common LOGIN
// mechanism (draft-murchison-sasl-login): "Username:", then "Password:",
// each answered in base64. A client may send the user name as its
// initial response.
func NewLoginServer(check Checker) sasl.Server { return &loginServer{check: check} }

type loginServer struct {
	check Checker
	user  string
	step  int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if len(resp) == 0 || len(resp) > maxField {
			l.step = 3
			return nil, false, ErrMalformed
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		if len(resp) > maxField {
			return nil, false, ErrMalformed
		}
		if err := l.check(l.user, string(resp)); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	return nil, false, errUnexpected
}
