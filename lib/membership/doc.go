// Package membership is the pure protocol core of concord-noded: liveness,
// agreed membership views and totally ordered group messaging with virtual
// synchrony, driven by Tick and Step and drained with Ready and Advance.
package membership
