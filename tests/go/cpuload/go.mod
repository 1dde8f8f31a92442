module gotuned/tests/cpuload

go 1.19
