package xlconfig

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/virtd/virtd/virt"
)

// Kind is the kind of an xl.cfg value.
type Kind int

// Value kinds.
const (
	String Kind = iota
	Number
	List
)

// Value is one xl.cfg value: a quoted string, a number (kept as written)
// or a list of strings.
type Value struct {
	Kind Kind
	Str  string
	List []string
}

// Entry is one "key = value" setting.
type Entry struct {
	Key   string
	Value Value
}

// File is an xl.cfg file: its settings in order. A key set twice keeps
// its last value, as xl does.
type File struct {
	Entries []Entry
}

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	for i := len(f.Entries) - 1; i >= 0; i-- {
		if f.Entries[i].Key == key {
			return f.Entries[i].Value, true
		}
	}
	return Value{}, false
}

// SetString, SetNumber and SetList append a setting.
func (f *File) SetString(key, s string) {
	f.Entries = append(f.Entries, Entry{key, Value{Kind: String, Str: s}})
}

// SetNumber appends a numeric setting.
func (f *File) SetNumber(key string, n int64) {
	f.Entries = append(f.Entries, Entry{key, Value{Kind: Number, Str: strconv.FormatInt(n, 10)}})
}

// SetList appends a list setting.
func (f *File) SetList(key string, l []string) {
	f.Entries = append(f.Entries, Entry{key, Value{Kind: List, List: l}})
}

// String writes the file as xl.cfg, one setting a line.
func (f *File) String() string {
	var b strings.Builder
	for _, e := range f.Entries {
		b.WriteString(e.Key)
		b.WriteString(" = ")
		switch e.Value.Kind {
		case Number:
			b.WriteString(e.Value.Str)
		case String:
			b.WriteString(quote(e.Value.Str))
		case List:
			b.WriteString("[ ")
			for i, s := range e.Value.List {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(quote(s))
			}
			b.WriteString(" ]")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// quote quotes s for xl.cfg, which has no escapes: double quotes unless s
// holds one.
func quote(s string) string {
	if strings.ContainsRune(s, '"') {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

// Parse reads xl.cfg text: settings "key = value" separated by newlines or
// ';', values quoted with " or ', numbers, or lists in [ ] (which may span
// lines and end with a comma); '#' starts a comment.
func Parse(text string) (*File, error) {
	p := &parser{s: text, line: 1}
	f := &File{}
	for {
		p.skipSpace(true)
		if p.eof() {
			return f, nil
		}
		key := p.ident()
		if key == "" {
			return nil, p.errorf("expected a setting name, found %q", p.peekRune())
		}
		p.skipSpace(false)
		if !p.accept('=') {
			return nil, p.errorf("expected '=' after %q", key)
		}
		p.skipSpace(false)
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		f.Entries = append(f.Entries, Entry{key, v})
		p.skipSpace(false)
		if !p.eof() && !p.accept('\n') && !p.accept(';') {
			return nil, p.errorf("expected the end of the line after %s", key)
		}
	}
}

type parser struct {
	s    string
	pos  int
	line int
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

func (p *parser) peekRune() string {
	if p.eof() {
		return "end of file"
	}
	return string(p.s[p.pos])
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("xl.cfg line %d: %s: %w", p.line, fmt.Sprintf(format, args...), virt.ErrInvalidArgument)
}

func (p *parser) accept(c byte) bool {
	if !p.eof() && p.s[p.pos] == c {
		if c == '\n' {
			p.line++
		}
		p.pos++
		return true
	}
	return false
}

// skipSpace skips blanks and comments, and newlines and ';' when
// newlines is true.
func (p *parser) skipSpace(newlines bool) {
	for !p.eof() {
		switch c := p.s[p.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for !p.eof() && p.s[p.pos] != '\n' {
				p.pos++
			}
		case newlines && (c == '\n' || c == ';'):
			p.accept(c)
		default:
			return
		}
	}
}

func (p *parser) ident() string {
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		if c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && p.pos > start {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

func (p *parser) value() (Value, error) {
	if p.eof() {
		return Value{}, p.errorf("missing value")
	}
	switch c := p.s[p.pos]; {
	case c == '"' || c == '\'':
		s, err := p.quoted()
		return Value{Kind: String, Str: s}, err
	case c == '[':
		p.pos++
		var l []string
		for {
			p.skipSpace(true)
			if p.accept(']') {
				return Value{Kind: List, List: l}, nil
			}
			if p.eof() || p.s[p.pos] != '"' && p.s[p.pos] != '\'' {
				return Value{}, p.errorf("a list holds quoted strings, found %s", p.peekRune())
			}
			s, err := p.quoted()
			if err != nil {
				return Value{}, err
			}
			l = append(l, s)
			p.skipSpace(true)
			if !p.accept(',') && (p.eof() || p.s[p.pos] != ']') {
				return Value{}, p.errorf("expected ',' or ']' in a list, found %s", p.peekRune())
			}
		}
	default:
		start := p.pos
		for !p.eof() && strings.IndexByte(" \t\r\n;#", p.s[p.pos]) < 0 {
			p.pos++
		}
		n := p.s[start:p.pos]
		if _, err := strconv.ParseInt(n, 0, 64); err != nil {
			return Value{}, p.errorf("%q is neither a number nor a quoted string", n)
		}
		return Value{Kind: Number, Str: n}, nil
	}
}

func (p *parser) quoted() (string, error) {
	q := p.s[p.pos]
	p.pos++
	start := p.pos
	for !p.eof() && p.s[p.pos] != q {
		if p.s[p.pos] == '\n' {
			return "", p.errorf("unterminated string")
		}
		p.pos++
	}
	if p.eof() {
		return "", p.errorf("unterminated string")
	}
	s := p.s[start:p.pos]
	p.pos++
	return s, nil
}
