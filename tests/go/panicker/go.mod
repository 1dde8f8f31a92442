module gotuned/tests/panicker

go 1.19
