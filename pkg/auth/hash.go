package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The argon2id parameters of new hashes: RFC 9106's second recommended
// option (64 MiB, 3 passes), with 4 lanes.
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 4
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Bounds on the parameters a credentials file may ask for, so that a
// mistyped line cannot make every AUTH allocate gigabytes or spin for
// minutes.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
	maxBcryptCost  = 16
)

// Scheme names a password hashing scheme.
const (
	Argon2id = "argon2id"
	Bcrypt   = "bcrypt"
)

// Hash hashes password with scheme (Argon2id or Bcrypt), in the form a
// credentials file holds.
func Hash(scheme, password string) (string, error) {
	switch scheme {
	case Argon2id, "":
		salt := make([]byte, argonSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
			b64.EncodeToString(salt), b64.EncodeToString(key)), nil
	case Bcrypt:
		if len(password) > 72 {
			return "", errors.New("bcrypt uses only the first 72 bytes of a password: use argon2id")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
		return string(h), err
	}
	return "", fmt.Errorf("unknown hash scheme %q (want %s or %s)", scheme, Argon2id, Bcrypt)
}

var b64 = base64.RawStdEncoding

// hash is one parsed password hash.
type hash struct {
	bcrypt []byte // the whole bcrypt string, or nil

	// argon2id
	salt, key []byte
	mem, time uint32
	threads   uint8
}

// parseHash checks a hash string and returns it parsed; the error says
// what is wrong without repeating the hash.
func parseHash(s string) (*hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil || len(s) != 60 {
			return nil, errors.New("malformed bcrypt hash")
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("bcrypt cost %d is above %d", cost, maxBcryptCost)
		}
		return &hash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("only argon2id is supported, not argon2i or argon2d")
	}
	return nil, errors.New("not a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash")
}

// parseArgon2id reads the PHC string form:
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>, base64 without padding.
func parseArgon2id(s string) (*hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return nil, errors.New("malformed argon2id hash (want $argon2id$v=19$m=...,t=...,p=...$salt$hash)")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2id version %q is not v=%d", f[2], argon2.Version)
	}
	h := &hash{}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, errors.New("argon2id parameters must be m=...,t=...,p=...")
	}
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(params[i], "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || k != name || err != nil || n == 0 {
			return nil, fmt.Errorf("argon2id parameter %d must be %s=<positive number>", i+1, name)
		}
		switch name {
		case "m":
			h.mem = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, errors.New("argon2id p must be at most 255")
			}
			h.threads = uint8(n)
		}
	}
	if h.mem > maxArgonMemory || h.time > maxArgonTime {
		return nil, fmt.Errorf("argon2id parameters above the limits (m=%d KiB, t=%d)", maxArgonMemory, maxArgonTime)
	}
	if h.mem < 8*uint32(h.threads) {
		return nil, errors.New("argon2id m must be at least 8*p")
	}
	var err error
	if h.salt, err = b64.DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("argon2id salt is not base64 of at least 8 bytes")
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil || len(h.key) < 16 || len(h.key) > 128 {
		return nil, errors.New("argon2id hash is not base64 of 16 to 128 bytes")
	}
	return h, nil
}

// verify reports whether password matches, in time that does not depend
// on where the two differ.
func (h *hash) verify(password string) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(password)) == nil
	}
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.mem, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}
