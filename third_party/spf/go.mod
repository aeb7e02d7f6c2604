module blitiri.com.ar/go/spf

go 1.25
