// Package fenceproto implements the ClusterLabs fence-agent protocol in both
// directions: the agent side (Main, Run) on which Concord's fence agents are
// built, and the caller side (Call, Metadata) that runs any installed agent.
package fenceproto
