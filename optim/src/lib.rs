//! Second-order solvers and the convergence theory of Section 14.
