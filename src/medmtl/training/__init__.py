"""Training of one (model, seed): the loop, checkpoints and resumption (`loop`), the multi-task
loss (`losses`) and the BI-RADS consistency regulariser (`birads`). Imports `models`, never
`evaluation`."""
