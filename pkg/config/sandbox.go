package config

// Sandbox configures the confinement each process puts itself in
// (pkg/sandbox): Landlock and a seccomp filter, applied by smtp-bs before
// it reads the client, by qrun after taking the lock and by sendmail
// after reading its config.
type Sandbox struct {
	// Enabled: confine with what the kernel offers, and log once what it
	// does not. On by default.
	Enabled bool `toml:"enabled"`
	// Required: refuse to run (421 and exit 77; qrun and sendmail exit 77)
	// unless everything is enforced: Landlock with file system and network
	// rules (ABI 4 or later) and the seccomp filter.
	Required bool `toml:"required"`
}

func (c *Config) validateSandbox(bad func(msg string, key ...string) error) error {
	if c.Sandbox.Required && !c.Sandbox.Enabled {
		return bad("needs [sandbox] enabled = true", "sandbox", "required")
	}
	return nil
}
