//! LogQL evaluation: log queries (streams) and metric queries (matrix,
//! vector, scalar), reading through the store facade.

pub mod functions;
