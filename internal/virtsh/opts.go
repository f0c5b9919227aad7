package virtsh

import (
	"strconv"
	"strings"
)

type optKind int

const (
	optBool optKind = iota
	optString
	optInt
	// optArgv takes every value given (virsh's VSH_OT_ARGV): a positional
	// one takes every positional argument left.
	optArgv
)

// opt is one option of a command. A positional option may also be given
// by name (virsh's "start --domain web" is "start web").
type opt struct {
	name       string
	kind       optKind
	help       string
	positional bool
	required   bool
}

// parsed holds a command's options after parsing.
type parsed struct {
	bools map[string]bool
	strs  map[string]string
	ints  map[string]int
	lists map[string][]string
}

func (p *parsed) flag(name string) bool  { return p.bools[name] }
func (p *parsed) str(name string) string { return p.strs[name] }

// list returns the values of an optArgv option.
func (p *parsed) list(name string) []string { return p.lists[name] }

func (p *parsed) has(name string) bool {
	_, ok := p.strs[name]
	_, many := p.lists[name]
	return ok || many
}

func (c *command) parse(args []string) (*parsed, error) {
	p := &parsed{bools: map[string]bool{}, strs: map[string]string{}, ints: map[string]int{}, lists: map[string][]string{}}
	find := func(name string) *opt {
		for i := range c.opts {
			if c.opts[i].name == name {
				return &c.opts[i]
			}
		}
		return nil
	}
	setValue := func(o *opt, v string) error {
		if o.kind == optArgv {
			p.lists[o.name] = append(p.lists[o.name], v)
			return nil
		}
		if _, dup := p.strs[o.name]; dup {
			return usagef("option --%s already seen", o.name)
		}
		if o.kind == optInt {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return usagef("numeric value '%s' for <%s> option is malformed or out of range", v, o.name)
			}
			p.ints[o.name] = n
		}
		p.strs[o.name] = v
		return nil
	}
	onlyPositional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" && !onlyPositional {
			onlyPositional = true
			continue
		}
		if strings.HasPrefix(a, "--") && !onlyPositional {
			name, value, hasValue := strings.Cut(a[2:], "=")
			o := find(name)
			if o == nil {
				return nil, usagef("command '%s' doesn't support option --%s", c.name, name)
			}
			if o.kind == optBool {
				if hasValue {
					return nil, usagef("option --%s takes no value", name)
				}
				p.bools[name] = true
				continue
			}
			if !hasValue {
				if i+1 >= len(args) {
					return nil, usagef("option --%s requires a value", name)
				}
				i++
				value = args[i]
			}
			if err := setValue(o, value); err != nil {
				return nil, err
			}
			continue
		}
		var target *opt
		for j := range c.opts {
			if o := &c.opts[j]; o.positional && (o.kind == optArgv || !p.has(o.name)) {
				target = o
				break
			}
		}
		if target == nil {
			return nil, usagef("unexpected data '%s'", a)
		}
		if err := setValue(target, a); err != nil {
			return nil, err
		}
	}
	for _, o := range c.opts {
		if o.required && !p.has(o.name) {
			return nil, usagef("command '%s' requires <%s> option", c.name, o.name)
		}
	}
	return p, nil
}
