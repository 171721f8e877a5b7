"""ODCS v3 (Open Data Contract Standard) support: parsing with located errors, import and export."""
