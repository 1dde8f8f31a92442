module gotuned/tests/agentload

go 1.19
