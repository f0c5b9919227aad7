package controller

import (
	"os"
	"strings"
	"unsafe"
)

// cmdlineRoom is the blank argument a controller is started with: the
// room in which it writes its arguments once it knows them, so that ps
// shows them (setCmdline). Blanks, so that a spare shows none.
var cmdlineRoom = strings.Repeat(" ", 1024)

// Command is the command line that starts a controller from exe.
func Command(exe string) []string { return []string{exe, ControllerArg, cmdlineRoom} }

// setCmdline rewrites the process's command line, as ps and
// /proc/PID/cmdline show it, to args after the first, in place of the
// original arguments after the first: setproctitle, as PostgreSQL does it.
// The kernel shows the memory that held the original arguments, which
// lie there one after the other, and Go's os.Args are that memory, not a
// copy. What does not fit the room is cut; os.Args are garbage afterwards.
func setCmdline(args []string) {
	if len(os.Args) < 2 || len(args) < 2 {
		return
	}
	first := unsafe.StringData(os.Args[1])
	last := os.Args[len(os.Args)-1]
	end := uintptr(unsafe.Pointer(unsafe.StringData(last))) + uintptr(len(last))
	room := unsafe.Slice(first, end-uintptr(unsafe.Pointer(first)))
	n := copy(room, strings.Join(args[1:], "\x00"))
	clear(room[n:])
}
