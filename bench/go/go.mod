module gorobenchgo

go 1.19
