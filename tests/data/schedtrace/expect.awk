# expect.awk — expected events for a real Go 1.19 schedtrace capture,
# written without tuner/schedtrace.c (see README.md, "Real captures").
#
#   awk -f expect.awk captured-X/input.txt > captured-X/expected.txt
#
# It knows only the strict whole-line formats Go 1.19 prints: a summary
# line, a scheddetail header and its P, M and G lines. Every other line is
# an ordinary line, except lines that are or may be pieces of a SCHED line
# split by the application or cut by a dying process: those come out as
# "TODO <raw line>" and their events are written by hand.

function esc(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/\r/, "\\r", s)
    gsub(/\t/, "\\t", s)
    return s
}

# The value of key k in line s (k= must be present).
function val(s, k,    t) {
    t = s
    sub(".*[ ]" k "=", "", t)
    sub(/ .*/, "", t)
    return t
}

function sample(ts, s, local) {
    printf "sample ts=%s gomaxprocs=%s idle=%s threads=%s spinning=%s idlethreads=%s needspinning=-1 runq=%s local=%s\n", \
        ts, val(s, "gomaxprocs"), val(s, "idleprocs"), val(s, "threads"), \
        val(s, "spinningthreads"), val(s, "idlethreads"), val(s, "runqueue"), local
}

BEGIN {
    N = "(0|[1-9][0-9]*)"
    HEAD = "^SCHED " N "ms: gomaxprocs=" N " idleprocs=" N " threads=" N " spinningthreads=" N \
           " idlethreads=" N " runqueue=" N
    SUM = HEAD " \\[" N "( " N ")*\\]$"
    HDR = HEAD " gcwaiting=[01] nmidlelocked=" N " stopwait=" N " sysmonwait=[01]$"
    ID = "(-1|" N ")"
    PL = "^  P" N ": status=" N " schedtick=" N " syscalltick=" N " m=" ID " runqsize=" N \
         " gfreecnt=" N " timerslen=" N "$"
    ML = "^  M" N ": p=" ID " curg=" ID " mallocing=" N " throwing=" N " preemptoff= locks=" N \
         " dying=" N " spinning=(true|false) blocked=(true|false) lockedg=" ID "$"
    GL = "^  G" N ": status=" N "\\([^()]*(\\([^()]*\\))?\\) m=" ID " lockedm=" ID "$"
    # Text that only the runtime prints: a line holding it is a piece.
    FRAG = "(gomaxprocs|idleprocs|threads|spinningthreads|idlethreads|runqueue|gcwaiting|" \
           "nmidlelocked|stopwait|sysmonwait|status|schedtick|syscalltick|runqsize|gfreecnt|" \
           "timerslen|mallocing|throwing|preemptoff|locks|dying|spinning|blocked|lockedg|lockedm|curg)="
    block = 0       # 1: reading P lines, 2: after them (M and G lines)
    prev_todo = 0
}

{
    line = $0
    if (line ~ /^SCHED /) {
        block = 0
        if (line ~ SUM) {
            ts = line; sub(/^SCHED /, "", ts); sub(/ms:.*/, "", ts)
            l = line; sub(/.*\[/, "", l); sub(/\]$/, "", l); gsub(/ /, ",", l)
            if (split(l, a, ",") == val(line, "gomaxprocs")) {
                sample(ts, line, l)
                prev_todo = 0
                next
            }
        } else if (line ~ HDR) {
            block = 1
            hdr = line
            ts = line; sub(/^SCHED /, "", ts); sub(/ms:.*/, "", ts)
            np = 0
            local = ""
            prev_todo = 0
            next
        }
        print "TODO " esc(line)
        prev_todo = 1
        next
    }
    if (block == 1 && line ~ PL) {
        if (val(line, "runqsize") != "" && substr(line, 4, index(line, ":") - 4) == np) {
            local = local (np ? "," : "") val(line, "runqsize")
            np++
            if (np == val(hdr, "gomaxprocs")) {
                sample(ts, hdr, local)
                block = 2
            }
            next
        }
    }
    if (block == 2 && (line ~ ML || line ~ GL))
        next
    if (line ~ FRAG || line ~ /^[0-9]+ms:/ || line ~ /^[0-9 ]*\]$/ || line ~ /^[0-9 ]*\[[0-9 ]*\]$/ ||
        line ~ /^-?[0-9]+$/ || line ~ /^  [PMG][0-9]/ || (line == "" && prev_todo)) {
        print "TODO " esc(line)
        prev_todo = 1
        next
    }
    print "line " esc(line)
    prev_todo = 0
}

END {
    if (block == 1)
        print "TODO block cut: " esc(hdr)
}
