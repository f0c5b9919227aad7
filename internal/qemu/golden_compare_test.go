package qemu

// Comparison of our dumpxml with libvirt 9.0's, for the golden documents
// under testdata/dumpxml (see regen.sh there).
//
// Both documents are parsed to a tree in which whitespace around text,
// attribute order, namespace prefixes, comments and processing
// instructions do not count, but the order of child elements does.
// Differences are reported as XPath-like paths:
//
//	/domain/devices/disk[2]/target/@dev    an attribute
//	/domain/memory/text()                  an element's text
//	/domain/devices/controller[3]          a whole element present on one side only
//	/domain/devices/*                      the order of the children differs
//
// A sibling index ([2], counted from 1) appears when either document has
// more than one element of that name under the same parent. Elements in a
// namespace are written {uri}local.
//
// NAME.diff beside NAME.xml lists the differences we accept, one per line:
// the path, then " # " and the reason. Lines that are empty or start with
// '#' are comments. compareWithLibvirt fails on every difference the list
// does not name and on every listed path that no longer differs.

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// goldenDumpXMLDir holds NAME.xml, NAME.libvirt.xml or NAME.libvirt.err,
// and NAME.diff.
const goldenDumpXMLDir = "testdata/dumpxml"

// xmlNode is one element of a canonicalised document.
type xmlNode struct {
	name  string
	attrs map[string]string
	text  string
	kids  []*xmlNode
}

// xmlDiff is one difference between our document and libvirt's. A side
// that lacks the attribute or element holds absentValue.
type xmlDiff struct {
	Path    string
	Ours    string
	Libvirt string
}

const absentValue = "(absent)"

func (d xmlDiff) String() string {
	return fmt.Sprintf("%s  ours=%s libvirt=%s", d.Path, d.Ours, d.Libvirt)
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// parseXMLTree reads one document into its canonical tree.
func parseXMLTree(doc string) (*xmlNode, error) {
	dec := xml.NewDecoder(strings.NewReader(doc))
	var stack []*xmlNode
	var texts []*strings.Builder
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: qname(tok.Name), attrs: map[string]string{}}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue // a declaration; the names it binds are compared resolved
				}
				n.attrs[qname(a.Name)] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			} else if root != nil {
				return nil, fmt.Errorf("more than one root element (<%s> after <%s>)", n.name, root.name)
			} else {
				root = n
			}
			stack = append(stack, n)
			texts = append(texts, &strings.Builder{})
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = strings.TrimSpace(texts[len(texts)-1].String())
			stack = stack[:len(stack)-1]
			texts = texts[:len(texts)-1]
		case xml.CharData:
			if len(texts) > 0 {
				texts[len(texts)-1].Write(tok)
			} else if strings.TrimSpace(string(tok)) != "" {
				return nil, fmt.Errorf("text outside the root element: %q", strings.TrimSpace(string(tok)))
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// diffXML returns the differences between our document and libvirt's, in
// document order.
func diffXML(ours, libvirt string) ([]xmlDiff, error) {
	a, err := parseXMLTree(ours)
	if err != nil {
		return nil, fmt.Errorf("our document: %w", err)
	}
	b, err := parseXMLTree(libvirt)
	if err != nil {
		return nil, fmt.Errorf("libvirt's document: %w", err)
	}
	var out []xmlDiff
	if a.name != b.name {
		return []xmlDiff{{Path: "/", Ours: startTag(a), Libvirt: startTag(b)}}, nil
	}
	diffNode("/"+a.name, a, b, &out)
	return out, nil
}

func diffNode(path string, a, b *xmlNode, out *[]xmlDiff) {
	names := map[string]bool{}
	for k := range a.attrs {
		names[k] = true
	}
	for k := range b.attrs {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		av, aok := a.attrs[k]
		bv, bok := b.attrs[k]
		if aok && bok && (av == bv || sameNumber(av, bv)) {
			continue
		}
		if !aok {
			av = absentValue
		}
		if !bok {
			bv = absentValue
		}
		*out = append(*out, xmlDiff{Path: path + "/@" + k, Ours: quote(av, aok), Libvirt: quote(bv, bok)})
	}
	if a.text != b.text {
		*out = append(*out, xmlDiff{Path: path + "/text()", Ours: quote(a.text, true), Libvirt: quote(b.text, true)})
	}

	// Children: the i-th <x> of ours against the i-th <x> of libvirt's,
	// names taken in the order libvirt's document first shows them.
	ak, bk := groupKids(a.kids), groupKids(b.kids)
	var order []string
	seen := map[string]bool{}
	for _, list := range [][]*xmlNode{b.kids, a.kids} {
		for _, k := range list {
			if !seen[k.name] {
				seen[k.name] = true
				order = append(order, k.name)
			}
		}
	}
	for _, name := range order {
		as, bs := ak[name], bk[name]
		n := max(len(as), len(bs))
		for i := 0; i < n; i++ {
			p := path + "/" + name
			if n > 1 {
				p = fmt.Sprintf("%s[%d]", p, i+1)
			}
			switch {
			case i >= len(as):
				*out = append(*out, xmlDiff{Path: p, Ours: absentValue, Libvirt: startTag(bs[i])})
			case i >= len(bs):
				*out = append(*out, xmlDiff{Path: p, Ours: startTag(as[i]), Libvirt: absentValue})
			default:
				diffNode(p, as[i], bs[i], out)
			}
		}
	}

	// Order: the children both sides have (the first min(count) of each
	// name) must come in the same sequence.
	as, bs := commonSequence(a.kids, ak, bk), commonSequence(b.kids, bk, ak)
	if strings.Join(as, " ") != strings.Join(bs, " ") {
		*out = append(*out, xmlDiff{Path: path + "/*", Ours: strings.Join(as, " "), Libvirt: strings.Join(bs, " ")})
	}
}

func groupKids(kids []*xmlNode) map[string][]*xmlNode {
	m := map[string][]*xmlNode{}
	for _, k := range kids {
		m[k.name] = append(m[k.name], k)
	}
	return m
}

// commonSequence lists the names of kids, keeping of each name only as many
// as the other side has too.
func commonSequence(kids []*xmlNode, mine, other map[string][]*xmlNode) []string {
	used := map[string]int{}
	var seq []string
	for _, k := range kids {
		if used[k.name] < min(len(mine[k.name]), len(other[k.name])) {
			used[k.name]++
			seq = append(seq, k.name)
		}
	}
	return seq
}

func quote(v string, present bool) string {
	if !present {
		return absentValue
	}
	return "'" + v + "'"
}

// startTag renders an element's start tag with sorted attributes, for
// messages about an element one side lacks.
func startTag(n *xmlNode) string {
	keys := make([]string, 0, len(n.attrs))
	for k := range n.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("<" + n.name)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s='%s'", k, n.attrs[k])
	}
	if len(n.kids) > 0 || n.text != "" {
		b.WriteString(">…")
	} else {
		b.WriteString("/>")
	}
	return b.String()
}

// allowedDiff is one line of a NAME.diff file.
type allowedDiff struct {
	Path   string
	Reason string
	Line   int
}

// readAllowedDiffs reads a differences file; a missing file allows none.
func readAllowedDiffs(file string) ([]allowedDiff, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var list []allowedDiff
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		path, reason, ok := strings.Cut(s, " # ")
		path, reason = strings.TrimSpace(path), strings.TrimSpace(reason)
		if !ok || reason == "" {
			return nil, fmt.Errorf("%s:%d: %q has no reason (write: PATH # why it may differ)", file, line, s)
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t") {
			return nil, fmt.Errorf("%s:%d: %q is not a path (it must start with / and hold no spaces)", file, line, path)
		}
		if prev, dup := seen[path]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed already on line %d", file, line, path, prev)
		}
		seen[path] = line
		list = append(list, allowedDiff{Path: path, Reason: reason, Line: line})
	}
	return list, sc.Err()
}

// libvirtMismatches compares ours with dir/NAME.libvirt.xml under the
// allowances in dir/NAME.diff and returns one message per problem: a
// difference not listed, or a listed one that no longer occurs. The error
// is for what makes the comparison impossible (no libvirt output, a bad
// differences file, a document that does not parse).
func libvirtMismatches(dir, name, ours string) ([]string, error) {
	want, err := os.ReadFile(filepath.Join(dir, name+".libvirt.xml"))
	if err != nil {
		if refusal, rerr := os.ReadFile(filepath.Join(dir, name+".libvirt.err")); rerr == nil {
			return nil, fmt.Errorf("%s: libvirt refuses this document (%s), so there is nothing to compare; the driver should refuse it too",
				name, strings.TrimSpace(string(refusal)))
		}
		return nil, fmt.Errorf("%s: no libvirt output: %w (run %s/regen.sh)", name, err, dir)
	}
	diffs, err := diffXML(ours, string(want))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	diffFile := filepath.Join(dir, name+".diff")
	allowed, err := readAllowedDiffs(diffFile)
	if err != nil {
		return nil, err
	}
	byPath := map[string]bool{}
	for _, a := range allowed {
		byPath[a.Path] = true
	}
	occurs := map[string]bool{}
	var msgs []string
	for _, d := range diffs {
		occurs[d.Path] = true
		if !byPath[d.Path] {
			msgs = append(msgs, fmt.Sprintf("%s: %s differs: ours %s, libvirt %s (fix it, or list it in %s as: %s # REASON)",
				name, d.Path, d.Ours, d.Libvirt, diffFile, d.Path))
		}
	}
	for _, a := range allowed {
		if !occurs[a.Path] {
			msgs = append(msgs, fmt.Sprintf("%s:%d: %s no longer differs from libvirt; remove the line", diffFile, a.Line, a.Path))
		}
	}
	return msgs, nil
}

// compareWithLibvirt fails t on every difference between ours (our
// dumpxml --inactive of testdata/dumpxml/NAME.xml) and libvirt's that
// NAME.diff does not allow, and on every allowance that is stale.
//
//lint:ignore U1000 the entry point for the dumpxml golden test that comes with implicit devices
func compareWithLibvirt(t testing.TB, name, ours string) {
	t.Helper()
	compareWithLibvirtIn(t, goldenDumpXMLDir, name, ours)
}

func compareWithLibvirtIn(t testing.TB, dir, name, ours string) {
	t.Helper()
	msgs, err := libvirtMismatches(dir, name, ours)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		t.Error(m)
	}
}

// libvirtRefusal returns libvirt's message for a golden input it refuses
// to define (testdata/dumpxml/NAME.libvirt.err), and whether it refuses.
func libvirtRefusal(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(goldenDumpXMLDir, name+".libvirt.err"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// goldenDumpXMLNames lists the golden inputs (NAME for each NAME.xml).
func goldenDumpXMLNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDumpXMLDir, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, ".libvirt.xml") {
			continue
		}
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".xml"))
	}
	if len(names) == 0 {
		t.Fatalf("no golden inputs in %s", goldenDumpXMLDir)
	}
	return names
}

// sameNumber reports whether two attribute values are the same number
// written in different bases: libvirt writes PCI ports and similar in
// hex ("0x10"), libvirtxml in decimal ("16").
func sameNumber(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 0, 64)
	y, err2 := strconv.ParseUint(b, 0, 64)
	return err1 == nil && err2 == nil && x == y
}
