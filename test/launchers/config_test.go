package launchers

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"smtp-bs/pkg/config"
)

// TestExampleConfig holds contrib/smtp-bs.toml to the code: every key of
// config.Config appears in it, in its table; every "# key = value" line
// shows the built-in default (uncommenting them all changes nothing), and
// the file as shipped loads.
func TestExampleConfig(t *testing.T) {
	src := contrib(t, "smtp-bs.toml")
	if _, err := config.Parse("contrib/smtp-bs.toml", []byte(src)); err != nil {
		t.Fatalf("the example as shipped: %v", err)
	}

	defaultRe := regexp.MustCompile(`^# (\w+) = (.+)$`)
	exampleRe := regexp.MustCompile(`^# Example: (\[[\w.]+\]|"?[\w.]+"? = .+)$`)
	seen := map[string]bool{}
	var defaults strings.Builder
	table := ""
	for _, l := range strings.Split(src, "\n") {
		if strings.HasPrefix(l, "[") {
			table = strings.Trim(l, "[]")
			defaults.WriteString(l + "\n")
			continue
		}
		if m := defaultRe.FindStringSubmatch(l); m != nil {
			seen[join(table, m[1])] = true
			defaults.WriteString(m[1] + " = " + m[2] + "\n")
		} else if m := exampleRe.FindStringSubmatch(l); m != nil {
			if strings.HasPrefix(m[1], "[") {
				seen[strings.Trim(m[1], "[]")] = true
			} else {
				seen[join(table, strings.TrimSpace(strings.SplitN(m[1], "=", 2)[0]))] = true
			}
		}
	}
	for _, k := range keys(reflect.TypeOf(config.Config{}), "") {
		if !seen[k] {
			t.Errorf("contrib/smtp-bs.toml does not show %s (as \"# %s = default\" or \"# Example: ...\")", k, k[strings.LastIndexByte(k, '.')+1:])
		}
	}

	got, err := config.Parse("defaults", []byte(defaults.String()))
	if err != nil {
		t.Fatalf("the default lines, uncommented: %v\n%s", err, defaults.String())
	}
	want, err := config.Parse("defaults", nil)
	if err != nil {
		t.Fatal(err)
	}
	// %+v prints a nil and an empty slice or map alike, as TOML writes them.
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("the \"# key = value\" lines are not the defaults:\n got %+v\nwant %+v", got, want)
	}
}

func join(table, key string) string {
	if table == "" {
		return key
	}
	return table + "." + key
}

// keys lists the TOML keys of a config struct, "table.key".
func keys(ty reflect.Type, prefix string) []string {
	var out []string
	for i := range ty.NumField() {
		f := ty.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name := join(prefix, tag)
		if f.Type.Kind() == reflect.Struct && f.Type.Name() != "Duration" {
			out = append(out, keys(f.Type, name)...)
			continue
		}
		out = append(out, name)
	}
	return out
}
