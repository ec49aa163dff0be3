-- curio.sync: to be written (issue 4).
return {}
