module gotuned/tests/killed

go 1.19
