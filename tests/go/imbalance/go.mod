module gotuned.test/imbalance

go 1.19
