// Avey's kernel list: included by avey/kernels/kernels.h into avey::kernels::cpu and
// avey::kernels::cuda (hence no include guard and no namespace). The argument structs say what
// each computes.

// ---- the enricher's element-wise end ----
template <class T> void bias_act_split(const BiasActSplit<T>& a);
template <class T> void act_grad_concat(const ActGradConcat<T>& a);

// ---- the ranker ----
template <class T> void maxsim_backward(const MaxSimBackward<T>& a);
// out[s] = sum over c of g[s, c] table[idx[s], c], in T (each row of g against the table row it
// was gathered from: the ranker's weight gradient dw_s = <dH_s, X_{j_s}>), returned in double.
template <class T>
void gathered_row_dots(int64_t n, int64_t cols, const T* g, const T* table, const int32_t* idx, double* out);
template <class T> void select_contexts(const SelectContexts<T>& a);
// P [batch, slots, table] (slots per sequence): P[b, s, split[i] - b * table] = weight[i] for slot
// i = b * slots + s where weight[i] != 0, 0 elsewhere; the contexts' gradient goes back to the
// rows as P^T dH.
template <class T>
void selection_matrix(int64_t batch, int64_t slots, int64_t table, const int32_t* split, const double* weight, T* P);
template <class T> void selection_score_grad(const SelectionScoreGrad<T>& a);

// ---- the contextualizer's weighted triangles ([batch, C, C] matrices) ----
// S = X + X^T per matrix G of the batch, X = G (.) W with W [C, C] lower triangular (only G's
// lower triangle is read: what is above may hold anything): the cosine's gradient made
// symmetric, so that dZn = dCos Zn + dCos^T Zn is one product S Zn.
template <class T> void sym_weighted(int64_t batch, int64_t C, const T* G, const T* W, T* S);
// out[i, j] = sum over n (in order) of a[n, i, j] b[n, i, j] for j <= i, else 0: the spatial
// weights' gradient (only the lower triangles are read).
template <class T> void tril_product_column_sums(int64_t batch, int64_t C, const T* a, const T* b, T* out);
