// Package virt is virtd's shared vocabulary: domain states and their
// reasons, lifecycle events, list filters and the error kinds that survive
// the trip from a driver, through the daemon, to a client. It is imported by
// driver authors (through package driver) and by client code (through
// package client), so both speak libvirt's words the same way.
package virt
