"""Sheet backends (CSV, XLSX, Google Sheets), the batch processor and the sheet writer."""
