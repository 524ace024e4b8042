package handlers

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// badCSVQuery answers a download whose query has bad values. A download
// has no form to highlight, so a plain 400 names each wrong parameter
// (or, with none named, says msg).
func badCSVQuery(c echo.Context, fields map[string]string, msg string) error {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		fmt.Fprintf(&b, "%s: %s\n", name, fields[name])
	}
	if b.Len() == 0 {
		b.WriteString(msg + "\n")
	}
	return c.String(http.StatusBadRequest, b.String())
}

// csvExport streams a CSV download (RFC 4180: CRLF line ends, quotes
// where needed) as rows come, flushed to the client every flushEvery
// rows, so memory stays flat whatever the size of the export.
type csvExport struct {
	c          echo.Context
	bw         *bufio.Writer
	w          *csv.Writer
	rows       int
	flushEvery int
}

// startCSV sends a download's headers, named filename, and its header row.
func startCSV(c echo.Context, filename string, header []string, flushEvery int) (*csvExport, error) {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+filename+`"`)
	h.Set("Cache-Control", "no-store")
	x := &csvExport{c: c, bw: bufio.NewWriterSize(c.Response(), 64<<10), flushEvery: flushEvery}
	x.w = csv.NewWriter(x.bw)
	x.w.UseCRLF = true
	return x, x.w.Write(header)
}

// write adds a row.
func (x *csvExport) write(rec []string) error {
	if err := x.w.Write(rec); err != nil {
		return err
	}
	if x.rows++; x.rows%x.flushEvery == 0 {
		x.w.Flush()
		if err := x.bw.Flush(); err != nil {
			return err // the client went away
		}
		x.c.Response().Flush()
	}
	return nil
}

// finish ends the download after the rows, err being what stopped them.
// Before anything is sent an error goes to the error handler; after, the
// status is sent, and all that is left is to stop and log.
func (a *App) finishCSV(x *csvExport, err error) error {
	if err != nil && !x.c.Response().Committed {
		return err
	}
	x.w.Flush()
	if ferr := x.bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		a.Log.Warn("csv export cut short", "request_id", RequestID(x.c), "rows", x.rows, "err", err.Error())
	}
	return nil
}
