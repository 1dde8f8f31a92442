module gotuned/tests/libagent

go 1.19

require gotuned.dev/agent v0.0.0

replace gotuned.dev/agent => ../../../agent/go
