"""Label, receipt and manifest rendering. A library: no Flask, no database."""
