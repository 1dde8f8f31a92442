module gotuned/tests/logheavy

go 1.19
