package virtsh

import (
	"io"
	"strings"
	"unicode/utf8"
)

// writeTable prints rows the way virsh's tables look: a leading space,
// columns three spaces apart, a line of dashes under the header, and no
// trailing spaces.
//
//	 Id   Name   State
//	----------------------
//	 1    test   running
func writeTable(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		for i, c := range r {
			b.WriteString(" ")
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteString("\n")
		io.WriteString(w, b.String())
	}
	line(header)
	total := 0
	for _, wd := range widths {
		total += wd + 3
	}
	io.WriteString(w, strings.Repeat("-", total)+"\n")
	for _, r := range rows {
		line(r)
	}
}
