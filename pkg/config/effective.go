package config

import (
	"encoding"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The configuration after defaults, like Postfix's postconf -d / -n. The
// keys come from the Config struct's toml tags, by reflection, so this
// printer, the man page and contrib/smtp-bs.toml are all checked against
// one list (Keys) and cannot drift from the decoder.

var (
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	textMarshaler   = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// leaf reports whether a field of type t is one key (rather than a table).
func leaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return false
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Struct
	}
	return true
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// Keys lists every key of the file, dotted: "hostname", "spool.dir",
// "delivery.routes" (a table of the admin's names), "milter.socket" (a key
// of each [[milter]] table).
func Keys() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := tagName(f)
			if name == "" {
				continue
			}
			switch {
			case leaf(f.Type) || f.Type.Kind() == reflect.Map:
				out = append(out, prefix+name)
			case f.Type.Kind() == reflect.Slice:
				walk(prefix+name+".", f.Type.Elem())
			default:
				walk(prefix+name+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return out
}

// Sections returns the tables that hold a key named name, for the hint on
// a key written in the wrong place.
func Sections(name string) []string {
	var out []string
	for _, k := range Keys() {
		if i := strings.LastIndexByte(k, '.'); i > 0 && k[i+1:] == name {
			out = append(out, k[:i])
		}
	}
	return out
}

// misplacedHint says where an unknown key belongs, if it is one of ours
// written in another table; "" otherwise.
func misplacedHint(key []string) string {
	name := key[len(key)-1]
	here := strings.Join(key[:len(key)-1], ".")
	var where []string
	for _, s := range Sections(name) {
		if s != here {
			where = append(where, "["+s+"]")
		}
	}
	for _, k := range Keys() {
		if k == name && here != "" {
			where = append(where, "the top level (before any [table] line)")
		}
	}
	if len(where) == 0 {
		return ""
	}
	if here == "" {
		here = "the top level"
	} else {
		here = "[" + here + "]"
	}
	h := fmt.Sprintf("; %s is not a key of %s: it belongs in %s", name, here, strings.Join(where, " or "))
	if len(where) == 1 && strings.HasPrefix(where[0], "[") {
		h += fmt.Sprintf(" (write it after the %s line)", where[0])
	}
	return h
}

// WriteEffective writes c as TOML that Parse reads back to the same
// configuration: every key with its value after defaults, or with
// changedOnly only those whose value differs from the embedded defaults
// (postconf -n). Tables of admin names (routes, senders) and [[milter]]
// tables are printed whole.
func WriteEffective(w io.Writer, c *Config, changedOnly bool) error {
	def, err := Parse("(embedded defaults)", nil)
	if err != nil {
		return err
	}
	e := &emitter{w: w}
	if changedOnly {
		e.printf("# %s: the keys that differ from the embedded defaults\n", c.Source)
	} else {
		e.printf("# %s: every key, after defaults\n", c.Source)
	}
	e.table("", reflect.ValueOf(c).Elem(), reflect.ValueOf(def).Elem(), changedOnly)
	return e.err
}

type emitter struct {
	w   io.Writer
	err error
}

func (e *emitter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// table prints the leaves of v (a struct) under [name], then its sub-tables.
func (e *emitter) table(name string, v, def reflect.Value, changedOnly bool) {
	t := v.Type()
	var lines []string
	type sub struct {
		name   string
		v, def reflect.Value
	}
	var subs []sub
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := tagName(f)
		if key == "" {
			continue
		}
		fv, fd := v.Field(i), def.Field(i)
		full := key
		if name != "" {
			full = name + "." + key
		}
		if !leaf(f.Type) {
			subs = append(subs, sub{full, fv, fd})
			continue
		}
		if fv.Kind() == reflect.Pointer && fv.IsNil() {
			continue // unset (DeliveryHost's: inherit from [delivery]); TOML has no null
		}
		if val := value(fv); !changedOnly || val != value(fd) {
			lines = append(lines, key+" = "+val)
		}
	}
	if len(lines) > 0 || (!changedOnly && name != "") {
		if name != "" {
			e.printf("\n[%s]\n", name)
		}
		for _, l := range lines {
			e.printf("%s\n", l)
		}
	}
	for _, s := range subs {
		switch s.v.Kind() {
		case reflect.Map:
			e.mapTable(s.name, s.v, s.def, changedOnly)
		case reflect.Slice:
			// There are no [[milter]] tables by default, so every one
			// counts as changed.
			for j := 0; j < s.v.Len(); j++ {
				e.printf("\n[[%s]]\n", s.name)
				el := s.v.Index(j)
				for k := 0; k < el.NumField(); k++ {
					if key := tagName(el.Type().Field(k)); key != "" {
						e.printf("%s = %s\n", key, value(el.Field(k)))
					}
				}
			}
		default:
			e.table(s.name, s.v, s.def, changedOnly)
		}
	}
}

// mapTable prints a table of the admin's names: one key each (routes,
// senders), or, where the values are structs ([delivery.hosts],
// [tls_policy.domains]), one sub-table each, printed whole.
func (e *emitter) mapTable(name string, v, def reflect.Value, changedOnly bool) {
	if changedOnly && (v.Len() == 0 || reflect.DeepEqual(v.Interface(), def.Interface())) {
		return
	}
	e.printf("\n[%s]\n", name)
	keys := v.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	et := v.Type().Elem()
	if et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	if leaf(et) {
		for _, k := range keys {
			e.printf("%s = %s\n", quote(k.String()), value(v.MapIndex(k)))
		}
		return
	}
	for _, k := range keys {
		el := v.MapIndex(k)
		if el.Kind() == reflect.Pointer {
			if el.IsNil() {
				continue // TOML has no null: an entry of nothing is no entry
			}
			el = el.Elem()
		}
		// The entry is new to the defaults as a whole, so all its keys
		// are printed, against a zero value that is never compared.
		e.table(name+"."+quote(k.String()), el, reflect.Zero(el.Type()), false)
	}
}

// value is v as a TOML value.
func value(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && !v.IsNil() && !v.Type().Implements(textMarshaler) {
		return value(v.Elem())
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return quote(string(b))
	}
	switch v.Kind() {
	case reflect.String:
		return quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64, reflect.Int32:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = value(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return quote(fmt.Sprint(v.Interface()))
}

// quote writes s as a TOML basic string: Go's %q escapes \x.. that TOML
// does not know, so control characters become \uXXXX.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ShowFlag is the -show-config flag: "-show-config" prints every key,
// "-show-config=changed" only those that differ from the defaults.
type ShowFlag string

// String implements flag.Value.
func (f *ShowFlag) String() string { return string(*f) }

// Set implements flag.Value.
func (f *ShowFlag) Set(s string) error {
	switch s {
	case "true", "all":
		*f = "all"
	case "changed", "n":
		*f = "changed"
	case "false":
		*f = ""
	default:
		return fmt.Errorf(`want -show-config (every key) or -show-config=changed (those that differ from the defaults)`)
	}
	return nil
}

// IsBoolFlag lets the flag stand alone.
func (f *ShowFlag) IsBoolFlag() bool { return true }
