-- curio.taskgroup: to be written (issue 4).
return {}
