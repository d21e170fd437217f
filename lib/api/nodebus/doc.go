// Package nodebus holds the D-Bus API of concord-noded: names, the
// interface XML that is its source of truth, the status and job types, the
// errors with their D-Bus names, and Client, the typed client that
// concordctl and the node's other daemons use. Changes are jobs: a change
// method returns a job at once and Client.Wait says how it ended.
package nodebus
