module gotuned.dev/agent

go 1.19
