-- curio.queue: to be written (issue 4).
return {}
