// Package deps checks the dependency rules of the code base: protocol cores
// stay pure state machines.
package deps
