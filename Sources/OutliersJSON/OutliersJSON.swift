// OutliersJSON: being written.
import CJansson
