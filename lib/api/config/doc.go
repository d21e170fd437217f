// Package config parses, validates and prints the Concord cluster
// configuration file, /etc/concord/cluster.conf.
package config
