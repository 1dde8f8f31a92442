module gotuned/tests/e2e/goprog

go 1.19
