package session

import "testing"

// The HELO name goes into the Received field: a ";" there was taken for
// the start of the date by parsers of the field (found by an interop run).
func TestSanitizeHelo(t *testing.T) {
	for in, want := range map[string]string{
		"mx.example.org": "mx.example.org",
		"a;b (c)":        "a_b__c_",
		`x"y<z>\w`:       "x_y_z__w",
		"[192.0.2.1]":    "[192.0.2.1]",
		"":               "unknown",
		"tab\there":      "tab_here",
	} {
		if got := sanitizeHelo(in); got != want {
			t.Errorf("sanitizeHelo(%q) = %q, want %q", in, got, want)
		}
	}
}
