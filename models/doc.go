// Package models owns the data of TT Console: the database connection and
// its migrations, the GORM structs, the stores that read and write them,
// money, and the typed errors that handlers map to responses.
package models
